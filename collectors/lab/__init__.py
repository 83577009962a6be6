"""Lab helpers: real net-snmp agents standing in for CPEs, on loopback addresses only."""
