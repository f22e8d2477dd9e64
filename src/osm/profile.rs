//! Per-mode access rules and speeds (the original tool's tables).
