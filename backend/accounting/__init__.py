"""Accounts' side of the back-end: who may use how much, what they used, what it costs.

- :mod:`backend.accounting.limits`: a user's roles (``user``, ``admin`` from ``TERRACUBE_ADMINS``,
  more from the identity provider) and the limits they give (``TERRACUBE_LIMITS``), checked with
  clear 4xx errors when a job starts, a file is uploaded or ``/result`` loads data;
- :mod:`backend.accounting.usage`: a user's usage summed from the job store and the folders on
  disk (``/me``, ``terracube users``);
- :mod:`backend.accounting.billing`: costs from a price list (``TERRACUBE_PRICES``), and the
  capabilities' ``billing`` section when there is one.
"""
