"""Benefits onto the card (一卡多用, seed 001; docs/benefits.md): other agencies' subsidy batches paid into holders'
financial social-security card accounts through each card's bank — batches.py records and submits a batch, credits.py
drives each credit's payment instruction to the bank (asked about before any resend), jobs.py drives what is open."""
