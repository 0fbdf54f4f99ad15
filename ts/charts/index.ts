export { CHART_CONFIG, renderVegaLiteSvg, type VegaSvgOptions } from './vegaSvg.js';
