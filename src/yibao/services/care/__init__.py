"""Care and its price: visits and fee lines, settlement (pre-settle, settle, cancel, reverse, two-phase
holds), quotes without saving, and JSON views of visits and lines."""
