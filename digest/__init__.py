"""The weekly digest: loading the week (`load`), composing each recipient's digest (`compose`,
pure), rendering (`render`), and delivery (`delivery`, `mail`, `archive`)."""
