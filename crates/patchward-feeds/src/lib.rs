//! Feed and inventory parsers.
pub mod ansible;
pub mod cvrf;
pub mod epss;
pub mod error;
pub mod estate;
pub mod hosts;
pub mod input;
pub mod inventory;
pub mod inventory_csv;
pub mod kbbuilds;
pub mod kev;
pub mod lifecycle;
pub mod nvd;
pub mod util;

pub use error::{ParseError, ParseErrors};
pub use input::{FeedKind, decode_text, detect, read_input, walk};
