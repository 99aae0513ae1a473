//! SUN URLs.
