"""HR risk analytics: risk scores, department patterns, attrition models and fairness."""
