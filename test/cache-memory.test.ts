import { createCache } from '@idem/cache';
import { cacheScenarios } from './cache-scenarios.js';

cacheScenarios('memory only', { shared: false, create: async (options) => createCache(options) });
