"""Indicator sharing: STIX 2.1 export of flagged clusters and a watchlist of partners' indicators."""
