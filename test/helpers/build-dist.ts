// tap's `before` script (package.json): dist/ built once for the whole run.
import { buildDist } from './plain-node.js';

buildDist();
