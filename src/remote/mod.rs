//! Yandex Cloud / DataSphere: the only module that speaks to the network.
//! Today: credentials from the environment and the IAM token exchange that `health
//! --online` uses. Remote training itself is not built yet.

pub mod auth;
