"""Switching a client's traffic between its own server and the standby: a protocol and its providers."""
