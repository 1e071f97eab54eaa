//! sizer
