//! rnncore
