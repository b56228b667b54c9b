"""The client's rights over its data: the export of everything an account holds (access and
portability) and the deletion of the account (erasure).

It reads and removes the rows of every domain, so it sits above them all (billing included),
beside `fta.models`; the portal and the worker call it.
"""
