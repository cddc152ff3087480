from django import template

from ocrreview.training.exports import ExportOptions
from ocrreview.training.models import DatasetExport

register = template.Library()


@register.filter
def described_filters(export: DatasetExport) -> list[str]:
    """The export's filters as sentences (ExportOptions.described)."""
    return ExportOptions.of(export).described()
