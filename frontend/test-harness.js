// For tests only: the viewer and its colour maps on window, plus pixel read-back helpers.
import { Viewer, decodeSurface } from './src/viewer.js';
import { VIRIDIS, RDBU_R, colourBytes } from './src/colormaps.js';

function pixels(viewer) {
  const c = viewer.canvas;
  const copy = document.createElement('canvas');
  copy.width = c.width;
  copy.height = c.height;
  const ctx = copy.getContext('2d');
  ctx.drawImage(c, 0, 0); // the drawing buffer is kept (preserveDrawingBuffer)
  return ctx.getImageData(0, 0, c.width, c.height);
}

window.harness = {
  Viewer, decodeSurface, VIRIDIS, RDBU_R,
  viridisBytes: Array.from(colourBytes(VIRIDIS)),
  // The RGB at CSS pixel (x, y) of the viewer's canvas.
  pixel(viewer, x, y) {
    const dpr = viewer.canvas.width / viewer.canvas.clientWidth;
    const image = pixels(viewer);
    const i = (Math.floor(y * dpr) * image.width + Math.floor(x * dpr)) * 4;
    return Array.from(image.data.subarray(i, i + 3));
  },
  // The share of the canvas's pixels that are not the background colour [r, g, b].
  drawnFraction(viewer, background) {
    const d = pixels(viewer).data;
    let drawn = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (Math.abs(d[i] - background[0]) + Math.abs(d[i + 1] - background[1]) + Math.abs(d[i + 2] - background[2]) > 6) drawn++;
    }
    return drawn / (d.length / 4);
  },
};
