"""The counter desk (柜面): shifts, counter transactions and the daily close (日结)."""
