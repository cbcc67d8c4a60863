"""`ant controller run`: the server that makes jobs end (docs/controller.md)."""
