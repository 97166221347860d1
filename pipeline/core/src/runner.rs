//! The stage runner (consume → handle → produce → commit).
