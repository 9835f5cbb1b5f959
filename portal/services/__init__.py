"""The behaviour of Tattletale: one function per thing a person does.

Services flush; the request or the job that called them commits (the whole rule, and
its few exceptions, is in portal/http/transactions.py).
"""
