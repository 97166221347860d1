//! The four topics of the pipeline, declared once.
//!
//! [`spec`] holds what each topic is (partitions, retention, key, record format); [`admin`] applies
//! the declarations to a broker idempotently: it creates what is missing and reports drift, never
//! deleting or silently changing an existing topic.

pub mod admin;
pub mod spec;

pub use spec::{Topic, TopicSpec};
