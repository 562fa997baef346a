"""What every kind of test shares: factories of index records and data sets, real peers and
a node subprocess, checks of what the node writes."""
