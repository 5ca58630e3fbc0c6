"""Care: rules turn predictions and health into field tickets and CSM alerts, with a closed loop."""
