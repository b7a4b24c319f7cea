//! Building clean sequences from photos: a pure plan of what is kept, dropped and split.
