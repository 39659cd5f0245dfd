//! Use-case services (filled below).
