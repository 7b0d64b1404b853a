import { serverMain } from './cli/server-main.js';

serverMain();
