//! Feed and inventory parsers.
