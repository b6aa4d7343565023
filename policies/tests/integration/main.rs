//! Every integration test of this crate in one binary: one file per
//! concern, as before, but compiled and linked once instead of once per
//! file (each of which links the whole dependency tree).

mod constraints;
mod exact;
