"""Employee advances (借款): the sub-ledger, approvals, repayment and the exit gate."""
