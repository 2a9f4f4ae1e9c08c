"""The performance trend: page timings taken on the server (`history`) and the weekly verdict (`verdict`)."""
