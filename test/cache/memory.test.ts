import { createCache } from '@idem/cache';
import { cacheScenarios } from './scenarios.js';

cacheScenarios('memory only', { shared: false, create: async (options) => createCache(options) });
