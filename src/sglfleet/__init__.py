"""sglfleet: provision SGLang serving clusters on bare-metal GPU servers with Ansible."""

__version__ = "0.1.0"
