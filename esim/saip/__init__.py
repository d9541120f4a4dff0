"""SAIP: the TCA "eUICC Profile Package: Interoperable Format" (v2.3 and later PE definitions)
as DER, via asn1tools. `decode` a package into profile elements, `encode` them back.
"""

from esim.saip.codec import decode, decode_element, encode, encode_element
from esim.saip.element import ProfileElement
from esim.saip.package import ProfilePackage

__all__ = ["ProfileElement", "ProfilePackage", "decode", "decode_element", "encode",
           "encode_element"]
