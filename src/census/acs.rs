//! Reading ACS values from Census-API JSON or CSV.
