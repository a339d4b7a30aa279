//! The input parsing of the `meshos` binary that needs no transport: tool arguments
//! (`checked`) and the `/v1/events` body formats (`event_batch`). A library beside the binary
//! so the fuzz targets (`fuzz/`) call the very functions the server calls.

pub mod checked;
pub mod event_batch;
