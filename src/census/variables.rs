//! ACS variable names of the original tool and their codes.
