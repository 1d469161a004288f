"""The weekly digest: building, rendering and delivery (arrives with the digest issue)."""
