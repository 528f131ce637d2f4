"""Monthly clearing (清算): an institution's application for a month (3203, withdrawn with 3204, its status 3205A), the
agency's review against the ledger and approval, and the payment through the agency's bank, after which the month's
money has left the institution's receivable (paid out, or held as the quality-guarantee deposit). Owns
clearing_applications, clearing_payees and clearing_payments; moves money only through services/books/ledger. The rules
(months, dates, the payable) are in yibao.domain.clearing; docs/clearing.md."""
