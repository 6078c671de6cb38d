//! Patchward's domain model. Pure: no I/O and no clock — time is always a parameter, so every
//! rule here can be tested with any date.

pub mod access;
pub mod build;
pub mod calendar;
pub mod catalog;
pub mod execution;
pub mod exposure;
pub mod intel;
pub mod inventory;
pub mod plan;
pub mod priority;
pub mod product;
pub mod workflow;

pub use build::OsBuild;
pub use catalog::Kb;
