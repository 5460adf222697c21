import express from 'express';
import express4 from 'express4';
import { expressAdapter } from '../apps/express-app.js';
import { httpScenarios } from './scenarios.js';

httpScenarios(expressAdapter('Express 5', express as never));
httpScenarios(expressAdapter('Express 4', express4 as never));
