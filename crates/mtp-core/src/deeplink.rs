//! deeplink
