//! Feed and inventory parsers.
pub mod cvrf;
pub mod error;

pub use error::ParseError;
