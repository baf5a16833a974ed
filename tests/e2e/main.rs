//! End-to-end tests: the real binary, real HTTPS, real clients. One test binary so
//! the suite links once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod attachment_damage;
mod audit_evidence;
mod crash;
mod demo;
mod dicom;
mod dicom_support;
mod dicom_zip;
mod file_range;
mod files_page;
mod harness;
mod idempotency;
mod imap;
mod neutralise;
mod notify;
mod openapi;
mod pages;
mod pages_admin;
mod pages_doctor;
mod pages_office;
mod pages_referral;
mod place;
mod records;
mod render_memory;
mod schemathesis;
mod sealed;
mod signin;
mod size_warning;
mod smtp;
mod story;
mod time_sync;
mod two_nodes;
mod twofactor;
mod viewer;
mod workflows;
