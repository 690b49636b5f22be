//! File-system helpers with the project's safety rules: writes are atomic (a temp file in the
//! same directory, fsync, rename) and never modify an input in place.
