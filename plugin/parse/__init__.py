"""Parse: a mail's bytes -> InboundMail (MIME tree, header fields, charsets, HTML to text); no policy."""
