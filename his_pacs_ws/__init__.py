"""his-pacs-ws: SOAP integration middleware between HIS and PACS/RIS."""

__version__ = "1.0.0"
