"""Open a WMTS layer in QGIS and draw it: run by Debian's ``/usr/bin/python3`` with ``python3-qgis``
(QGIS's Python bindings are built for the system Python, not the project's venv).

``python3 open_wmts.py CAPABILITIES_URL LAYER WEST SOUTH EAST NORTH OUT.png`` adds the layer the way
QGIS's "Add WMS/WMTS Layer" dialog does (the ``wms`` data provider with a WMTS URI: layer, tile matrix
set, format, style), renders it over the EPSG:3857 extent to a 256 × 256 PNG and prints one JSON line:
whether the layer is valid, its CRS, extent and provider errors, and where the picture went.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display: Qt draws into memory

from qgis.core import (  # noqa: E402
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsRectangle,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def main(url: str, layer_id: str, west: float, south: float, east: float, north: float, out: str) -> dict:
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    try:
        uri = (f"contextualWMSLegend=0&crs=EPSG:3857&dpiMode=7&format=image/png&layers={layer_id}"
               f"&styles=default&tileMatrixSet=WebMercatorQuad&url={url}")
        layer = QgsRasterLayer(uri, "openEO WMTS", "wms")
        if not layer.isValid():  # (QGIS 3.22 crashes reading the error of a valid layer)
            return {"valid": False, "error": layer.error().summary()}
        answer: dict = {"valid": True}
        extent = layer.extent()
        answer.update(crs=layer.crs().authid(), extent=[extent.xMinimum(), extent.yMinimum(),
                                                        extent.xMaximum(), extent.yMaximum()])
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        settings.setExtent(QgsRectangle(west, south, east, north))
        settings.setOutputSize(QSize(256, 256))
        settings.setBackgroundColor(QColor(0, 0, 0, 0))  # transparent where the layer draws nothing
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        answer["rendered"] = job.renderedImage().save(out, "PNG")
        answer["render_errors"] = [error.message for error in job.errors()]
        return answer
    finally:
        app.exitQgis()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    print(json.dumps(main(arguments[0], arguments[1], *map(float, arguments[2:6]), arguments[6])))
