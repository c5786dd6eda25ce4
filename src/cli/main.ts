console.error('tsswarm: not built yet');
process.exit(1);
