"""Credit payment (信用支付): the line as the platform holds it (lines), enrolment, the cash share of a
payment reserved and captured on the line (reservations), repayments, keeping in step with the bank
(sync: queries and notifications) and the daily jobs."""
