//! The Map the Paths transport-type taxonomy.
