from django import template

from ocrreview.training.exports import ExportError, ExportOptions
from ocrreview.training.models import DatasetExport

register = template.Library()


@register.filter
def described_filters(export: DatasetExport) -> list[str]:
    """The export's filters as sentences (ExportOptions.described); as stored, for a row whose
    options the checks made since refuse (no format, one renamed), so its page still opens."""
    try:
        return ExportOptions.of(export).described()
    except ExportError:
        stored = [f"{key}: {value}" for key, value in export.filters.items()]
        return [*stored, f"formats: {', '.join(export.formats) or 'none'}"]
